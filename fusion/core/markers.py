"""The pluggy markers of the project ``fusion``: all a backend plugin imports from Fusion."""

import pluggy

PROJECT = "fusion"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
