"""runexp-tui: from a training repo to a tracked, monitored run, in the terminal."""

__version__ = "0.1.0"
