"""hostpulse: a self-hosted monitor for the CPU, memory, disks, network and processes of a fleet."""

__version__ = "0.1.0"
