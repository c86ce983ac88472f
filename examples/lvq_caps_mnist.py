"""The LVQ-capsule network on MNIST, tested on affNIST.

The same as `anysma run lvq_caps_mnist`.

Usage: PYTHONPATH=. python examples/lvq_caps_mnist.py [flags]  (--help lists them)
"""

from anysma.experiments import lvq_caps_mnist

if __name__ == "__main__":
    lvq_caps_mnist.main()
