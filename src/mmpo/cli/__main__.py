import sys

from mmpo.cli import main

sys.exit(main())
