"""Sabour et al.'s CapsNet on MNIST; the same as `anysma run capsnet`.

Usage: PYTHONPATH=. python examples/capsnet.py [flags]  (--help lists them)
"""

from anysma.experiments import capsnet

if __name__ == "__main__":
    capsnet.main()
