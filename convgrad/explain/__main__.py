"""python -m convgrad.explain {conv,pool,resample} [options]"""
import sys

from . import main

sys.exit(main())
