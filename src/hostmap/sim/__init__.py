"""A simulated OpenStack cloud (Keystone v3, Nova, Placement) over real HTTP, for tests and the demo."""
