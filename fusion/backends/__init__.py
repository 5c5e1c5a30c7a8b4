"""The backends that ship with Fusion, each registered as a plugin like any third party's."""
