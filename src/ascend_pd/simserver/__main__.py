"""``python -m ascend_pd.simserver``: one simulated vLLM prefill or decode instance."""

from __future__ import annotations

import sys

from ascend_pd.simserver.serve import main

sys.exit(main())
