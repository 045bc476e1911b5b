"""`ascend-pd demo`: the whole flow on a simulated two-host cluster on this machine."""
