"""Optional framework integrations: a frozen policy driving someone else's training loop.

Both wrap `agents.deploy.controller.HyperController`, which hooks the framework's torch
optimizer, and need their extra (``pip install -e '.[hf]'`` or
``'.[lightning]'``); import the submodule you use:

- `agents.deploy.integrations.hf.HyperControllerCallback`, a ``transformers``
  ``TrainerCallback``: it attaches on ``on_train_begin`` (``total_steps`` is
  ``state.max_steps``), reads the training loss from the model's
  ``outputs.loss`` through a forward hook, gets validation metrics from an
  ``evaluate`` callable or evaluates an ``eval_dataset`` itself (loss and argmax
  accuracy), and re-anchors the Trainer's learning-rate scheduler after each
  decision so the scheduler does not undo it. Use
  ``lr_scheduler_type="constant"``.
- `agents.deploy.integrations.lightning.HyperControllerCallback`, a Lightning
  ``Callback``: it attaches on ``on_train_start`` to ``trainer.optimizers[0]``
  (``total_steps`` is ``trainer.estimated_stepping_batches``), reads the loss in
  ``on_before_backward`` and reports it in ``on_before_optimizer_step`` (before
  the step's decision), gets validation metrics from an ``evaluate`` callable or
  evaluates the module on the validation loader itself (``module(inputs)``
  logits against targets), and re-anchors schedulers from
  ``configure_optimizers`` the same way.

Both change only what an optimizer's parameter groups carry (learning rate,
momentum, weight decay). The batch size cannot be changed where a framework
owns the data loader: a policy that tunes batch size or dropout is refused
when the callback is built (`agents.deploy.controller.check_servable`);
``scripts/run_policy.py`` (`agents.deploy.drive.drive_task`) trains with a
`hpenv.training.TrainingRun` and does apply batch-size decisions.

Validation runs at every decision inside the optimizer step, so it always sees
the model at the end of the interval; the frameworks' own validation schedules
run after the step and are not used. See each module's docstring for details.
"""
