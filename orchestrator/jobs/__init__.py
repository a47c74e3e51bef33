"""Use cases without click or rich: a `Session` (session.py) and the jobs that run in one (lockdown,
maintenance, inventory), plus what opening one needs (config, workspace, connect) and scheduler entries.
The command line, the benchmarks and the tests call these same functions."""
