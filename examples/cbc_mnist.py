"""Classification-by-components on MNIST; the same as `anysma run cbc_mnist`.

Usage: PYTHONPATH=. python examples/cbc_mnist.py [flags]  (--help lists them)
"""

from anysma.experiments import cbc_mnist

if __name__ == "__main__":
    cbc_mnist.main()
