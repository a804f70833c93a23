"""The command-line programs: each module's ``main(argv)``, its docstring the ``--help`` text.

Installed as console scripts (``[project.scripts]`` in ``pyproject.toml``); from a
clone, ``python scripts/<script>.py`` runs the same ``main``:

| command | module | script |
|---|---|---|
| ``hpenv-train`` | `agents.commands.train` | ``scripts/train_agent.py`` |
| ``hpenv-evaluate`` | `agents.commands.evaluate` | ``scripts/evaluate.py`` |
| ``hpenv-run`` | `agents.commands.run` | ``scripts/run_policy.py`` |
| ``hpenv-export`` | `agents.commands.export` | ``scripts/export_policy.py`` |
| ``hpenv-adapt`` | `agents.commands.adapt` | ``scripts/adapt_policy.py`` |
"""
