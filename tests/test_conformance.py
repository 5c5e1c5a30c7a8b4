"""The conformance suite shipped in fusion.testing, run against every installed backend
(or those named in FUSION_TEST_BACKENDS)."""

from fusion.testing.suite import *  # noqa: F403  (pytest collects the imported Test classes)
