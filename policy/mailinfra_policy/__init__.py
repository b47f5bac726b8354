"""The rules of the mailinfra policy pack, self-contained: this folder is all `pulumi policy publish` uploads.

The pack imports nothing from the project (Pulumi Cloud installs only requirements.txt into the pack's
own virtualenv, pulumi/pulumi `completePythonInstall`), so the few record parsers it needs live here;
tests/policy checks that they read every record our planner publishes as mailinfra.dns does.
"""
