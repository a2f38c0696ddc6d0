import sys

from mastd.main import main

sys.exit(main())
