"""The use cases, as a library: typed options in, a report out, no click.

Each module is one thing a user does (train, evaluate, export, predict, camera, bench, demo, info);
`edgemtl.cli` only turns flags into these calls and their reports into lines. Scripts call them the same
way. Nothing is imported here, so `edgemtl.commands.camera` stays free of PyTorch.
"""
