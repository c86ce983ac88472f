"""Mazzia et al.'s Efficient-CapsNet on MNIST.

The same as `anysma run efficient_capsnet_mnist`.

Usage: PYTHONPATH=. python examples/efficient_capsnet_mnist.py [flags]
(--help lists them)
"""

from anysma.experiments import efficient_capsnet_mnist

if __name__ == "__main__":
    efficient_capsnet_mnist.main()
