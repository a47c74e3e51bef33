"""The reconcile loop: compile desired resources, diff against observed, plan, apply, journal."""
