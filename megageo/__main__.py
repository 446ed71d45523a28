import sys

from megageo.cli import main

sys.exit(main())
