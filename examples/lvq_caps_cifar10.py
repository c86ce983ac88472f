"""The LVQ-capsule network on CIFAR-10; the same as `anysma run lvq_caps_cifar10`.

Usage: PYTHONPATH=. python examples/lvq_caps_cifar10.py [flags]  (--help lists them)
"""

from anysma.experiments import lvq_caps_cifar10

if __name__ == "__main__":
    lvq_caps_cifar10.main()
