"""Course tooling: JupyterLab launcher, manifest, notebook widgets."""
