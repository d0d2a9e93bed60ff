"""In-process fakes of the outside services gpudesk talks to, for tests that must stay offline."""
