"""Contract-faithful fakes of services this machine cannot run (see each package's docstring)."""
