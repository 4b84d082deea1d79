import sys

from emoji_reco.cli import main

sys.exit(main())
