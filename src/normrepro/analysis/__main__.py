import sys

from normrepro.analysis.cli import main

sys.exit(main())
