"""`python -m trainer ...`: see trainer/cli.py."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter hides our output

from trainer.cli import main  # noqa: E402

raise SystemExit(main())
