"""The LVQ-capsule network on smallNORB at 48 x 48.

The same as `anysma run lvq_caps_smallnorb48`.

Usage: PYTHONPATH=. python examples/lvq_caps_smallnorb48.py [flags]  (--help lists them)
"""

from anysma.experiments import lvq_caps_smallnorb48

if __name__ == "__main__":
    lvq_caps_smallnorb48.main()
