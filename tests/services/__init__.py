"""Real daemons for integration tests: sshd on loopback and a single-node Slurm, in temp folders."""
