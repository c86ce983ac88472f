"""GLVQ on MNIST; the same as `anysma run lvq_mnist`.

Usage: PYTHONPATH=. python examples/lvq_mnist.py [flags]  (--help lists them)
"""

from anysma.experiments import lvq_mnist

if __name__ == "__main__":
    lvq_mnist.main()
