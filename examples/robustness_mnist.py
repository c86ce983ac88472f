"""Certified robustness and reject option of LVQ models on MNIST.

The same as `anysma run robustness_mnist`.

Usage: PYTHONPATH=. python examples/robustness_mnist.py [flags]  (--help lists them)
"""

from anysma.experiments import robustness_mnist

if __name__ == "__main__":
    robustness_mnist.main()
