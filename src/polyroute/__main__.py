import sys

from polyroute.cli import main

sys.exit(main())
