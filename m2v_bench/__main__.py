import sys

from m2v_bench.cli import main

sys.exit(main())
