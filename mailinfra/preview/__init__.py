"""The offline preview: the plan and the program's resources written out for review.

- model: Preview, PreviewFile, Contributor (what a preview holds)
- artifacts: zones, plan.json, build_preview / write_preview
- stages: the contributors beyond DNS (rendered MTA files, the resources of a mock `pulumi preview`)
- review_md, summary: the reviewer's Markdown and the terminal summary

It reads the deployment emulator (mailinfra.deployment) for the resource list; nothing imports back.
"""
