"""GMLVQ on Tecator; the same as `anysma run gmlvq_tecator`.

Usage: PYTHONPATH=. python examples/gmlvq_tecator.py [--epochs 60] [--help]
"""

from anysma.experiments import gmlvq_tecator

if __name__ == "__main__":
    gmlvq_tecator.main()
