import sys

from dwh.cli import main

sys.exit(main())
