import sys

from peerseq.cli import main

sys.exit(main())
