"""Restricted tangent LVQ on MNIST; the same as `anysma run rtlvq_mnist`.

Usage: PYTHONPATH=. python examples/rtlvq_mnist.py [flags]  (--help lists them)
"""

from anysma.experiments import rtlvq_mnist

if __name__ == "__main__":
    rtlvq_mnist.main()
