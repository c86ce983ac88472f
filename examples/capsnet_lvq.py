"""CapsNet with an LVQ capsule instead of dynamic routing.

The same as `anysma run capsnet_lvq`.

Usage: PYTHONPATH=. python examples/capsnet_lvq.py [flags]  (--help lists them)
"""

from anysma.experiments import capsnet_lvq

if __name__ == "__main__":
    capsnet_lvq.main()
