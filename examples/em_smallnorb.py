"""Matrix capsules with EM routing on smallNORB.

The same as `anysma run em_smallnorb`.

Usage: PYTHONPATH=. python examples/em_smallnorb.py [flags]  (--help lists them)
"""

from anysma.experiments import em_smallnorb

if __name__ == "__main__":
    em_smallnorb.main()
