"""`PotentialModule`: the LightningModule that fits a `Potential` to energies, forces and stress."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import lightning.pytorch as pl
import torch
from ase.data import chemical_symbols
from lightning.pytorch.utilities import rank_zero_info

from mlip.data.reference_energies import residual_shift, resolve_reference_energies, underdetermined_note
from mlip.graph.batch import GraphBatch
from mlip.models.build import build_potential
from mlip.models.potential import Potential
from mlip.models.presets import load_preset
from mlip.train.compiled_forces import CompiledForces
from mlip.train.loss import LossWeights, check_labels_for_loss, unused_stress_note, weighted_loss
from mlip.evaluate.metrics import ErrorAccumulator
from mlip.train.schedule import budget_fraction, cosine_factor
from mlip.train.symmetry import SymmetryObjective, SymmetrySchedule, random_rotations


class PotentialModule(pl.LightningModule):
    """Fits a potential built from a preset to the data module's shards.

    The network is built in `configure_model` from the training manifest: its elements,
    graph cutoff, mean neighbour count, per-element reference energies (least squares),
    shift (mean residual energy per atom) and scale (force RMS), so that training and
    evaluation use the same normalisation.

    Args:
        model: preset name shipped in mlip/presets (equivariant_medium, the default: the accuracy front's best
            CPU point; equivariant_small for demos and tests, equivariant_large, transformer_small) or the path
            of a YAML file of network options.
        model_options: overrides of the preset's options, e.g. {"radial": "mlp", "channels": 64}.
        dtype: floating-point type of the model: "float32" or "float64".
        compile: run the energy, forces and stress of training and validation steps under torch.compile
            (`mlip.train.compiled_forces`: the force derivatives traced into the compiled graph, the first
            call of every graph checked against eager autograd). Networks that see whole structures
            (transformer with molecule attention or frames) are refused.
        e0s: per-element reference energies (eV) taken off before the network: "least_squares"
            (fit over the training compositions, default), "average" (the mean energy per atom for
            every element), "isolated" (the training files' frames marked config_type=IsolatedAtom,
            MACE's convention; they are not trained on), the path of a file of isolated atoms with
            energies, or {element: eV}. Printed at the start and stored in the model file.
        energy_weight: loss weight of the squared energy-per-atom error (eV/atom)².
        forces_weight: loss weight of the force term (`forces_loss`).
        forces_loss: "mse" (squared force-component error, (eV/Å)², default), "huber" (squared below
            huber_delta, linear above) or "l2norm" (length of each atom's force-error vector, eV/Å);
            `mlip.train.loss.LossWeights`.
        huber_delta: where the "huber" force term turns linear (eV/Å).
        stress_weight: loss weight of the squared stress-component error (eV/Å³)²; 0 ignores stress.
        late_energy_weight: energy weight from late_start_epoch on (MACE's second stage raises it);
            None keeps the weights fixed.
        late_start_epoch: the epoch where late_energy_weight takes over.
        late_start_fraction: or the fraction of the training budget (steps, epochs or max_time,
            `mlip.train.schedule.budget_fraction`) where it takes over, e.g. 0.75.
        optimizer: "adam" or "adamw".
        lr: learning rate (after warm-up).
        weight_decay: decoupled weight decay (adamw) or L2 penalty (adam).
        amsgrad: use the AMSGrad variant of Adam (MACE's default).
        scheduler: "plateau" (ReduceLROnPlateau on val_loss), "cosine" (to 0 at max_epochs), "budget"
            (cosine from lr to lr·lr_final_factor over the budget: max_steps, max_epochs or max_time,
            whichever ends first; stepped every optimizer step) or "none".
        lr_final_factor: the "budget" schedule's last lr as a fraction of lr.
        lr_decay_start: fraction of the budget where the "budget" schedule starts its decay (the lr
            is constant before): 0 decays from the first step.
        plateau_patience: epochs without val_loss improvement before the plateau scheduler lowers lr
            (50, MACE's scheduler_patience and the accuracy front's setting).
        plateau_factor: factor applied to lr on a plateau.
        warmup_steps: linear learning-rate warm-up over this many optimizer steps.
        rotation_augmentation: train on a randomly rotated copy of every structure (each step,
            forces and stress rotated with it). None (default): on exactly for networks that are
            not rotation invariant by construction (`rotation_invariant = False`: the transformer
            without frame averaging), the measured best setting for them at equal time
            (`benchmarks.transformer_scaling`).
        symmetry_weight: weight of the learned-equivariance objective (`mlip.train.symmetry`,
            TransIP-style; transformer only); 0 turns it off.
        symmetry_warmup_epochs: epochs over which the objective's weight ramps up.
        symmetry_final_fraction: fraction of symmetry_weight kept at the end of training.
        symmetry_temperature: temperature of the objective's contrastive softmax.
        symmetry_level: "structure" (pooled embedding, as TransIP) or "atom".
        symmetry_projection_dim: width of the projection head of the objective.
        symmetry_stop_gradient: embed the rotated copy without gradient (a fixed target, as in
            SimSiam/BYOL), which saves its backward pass: about half the objective's cost.
    """

    def __init__(self, model: str = "equivariant_medium", model_options: dict[str, Any] | None = None,
                 dtype: str = "float32", compile: bool = False, e0s: str | dict[str, float] = "least_squares", energy_weight: float = 1.0,
                 forces_weight: float = 100.0, forces_loss: str = "mse", huber_delta: float = 0.01,
                 stress_weight: float = 0.0, late_energy_weight: float | None = None,
                 late_start_epoch: int | None = None, late_start_fraction: float | None = None,
                 optimizer: str = "adam", lr: float = 0.01, lr_final_factor: float = 0.01,
                 lr_decay_start: float = 0.0, weight_decay: float = 0.0, amsgrad: bool = True, scheduler: str = "plateau",
                 plateau_patience: int = 50, plateau_factor: float = 0.8, warmup_steps: int = 0,
                 rotation_augmentation: bool | None = None, symmetry_weight: float = 0.0, symmetry_warmup_epochs: int = 0,
                 symmetry_final_fraction: float = 1.0, symmetry_temperature: float = 0.1,
                 symmetry_level: str = "atom", symmetry_projection_dim: int = 32,
                 symmetry_stop_gradient: bool = False):
        super().__init__()
        if optimizer not in ("adam", "adamw"):
            raise ValueError(f"optimizer must be 'adam' or 'adamw', got '{optimizer}'")
        if scheduler not in ("plateau", "cosine", "budget", "none"):
            raise ValueError(f"scheduler must be 'plateau', 'cosine', 'budget' or 'none', got '{scheduler}'")
        if not 0.0 <= lr_final_factor <= 1.0:
            raise ValueError(f"lr_final_factor must be between 0 and 1, got {lr_final_factor}")
        if not 0.0 <= lr_decay_start < 1.0:
            raise ValueError(f"lr_decay_start must be in [0, 1), got {lr_decay_start}")
        if late_start_fraction is not None and not 0.0 <= late_start_fraction <= 1.0:
            raise ValueError(f"late_start_fraction must be between 0 and 1, got {late_start_fraction}")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got '{dtype}'")
        self.save_hyperparameters()
        if symmetry_level not in ("structure", "atom"):
            raise ValueError(f"symmetry_level must be 'structure' or 'atom', got '{symmetry_level}'")
        self.potential: Potential | None = None
        self.compiled_forces: CompiledForces | None = None
        self.symmetry: SymmetryObjective | None = None
        self.symmetry_schedule = SymmetrySchedule(symmetry_weight, symmetry_warmup_epochs, symmetry_final_fraction)
        self.weights = LossWeights(energy_weight, forces_weight, stress_weight, forces_loss, huber_delta)
        self.val_errors = ErrorAccumulator()

    # ----- model -----------------------------------------------------------------------------
    def configure_model(self) -> None:
        if self.potential is not None:
            return
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is None:
            raise RuntimeError("PotentialModule needs a ShardDataModule to build its potential from the manifest")
        inputs = datamodule.train_inputs
        if "labels" in datamodule.manifest:  # counted by every manifest mlip writes
            check_labels_for_loss(datamodule.manifest["labels"], self.weights,
                                  ", ".join(map(str, inputs)) if isinstance(inputs, (list, tuple)) else str(inputs))
            unused_stress_note(datamodule.manifest["labels"], self.weights)
        self.potential = self.build_from_manifest(datamodule.manifest)
        if self.hparams.compile:
            self.compiled_forces = CompiledForces(self.potential)
        if self.hparams.symmetry_weight > 0:
            dim = getattr(self.potential.network, "embedding_dim", None)
            if dim is None:
                raise ValueError(f"symmetry_weight > 0 needs a network with per-atom embeddings (architecture "
                                 f"'transformer'); model '{self.hparams.model}' has none")
            if getattr(self.potential.network, "frames", None) is not None:
                raise ValueError("symmetry_weight > 0 with frame averaging: the energy is already exactly invariant, "
                                 "the objective has nothing to learn; set symmetry_weight 0 or drop frames")
            h = self.hparams
            self.symmetry = SymmetryObjective(dim, h.symmetry_projection_dim, h.symmetry_temperature,
                                              h.symmetry_level).to(getattr(torch, h.dtype))

    @property
    def augments_rotations(self) -> bool:
        """Whether training steps see randomly rotated structures (`rotation_augmentation`, or by default
        whether the network is not rotation invariant by construction)."""
        chosen = self.hparams.rotation_augmentation
        if chosen is None:
            return not getattr(self.potential.network, "rotation_invariant", True)
        return bool(chosen)

    def build_from_manifest(self, manifest: dict[str, Any]) -> Potential:
        options = load_preset(self.hparams.model)
        options.update(self.hparams.model_options or {})
        preset_cutoff = options.pop("cutoff", None)  # the graphs decide the cutoff; a preset may only agree
        if preset_cutoff is not None and abs(float(preset_cutoff) - float(manifest["cutoff"])) > 1e-9:
            raise ValueError(f"model preset '{self.hparams.model}' asks for cutoff {preset_cutoff} Å but the training "
                             f"graphs were built with {manifest['cutoff']} Å; make them agree (data.cutoff / "
                             f"mlip-preprocess --cutoff) or drop cutoff from the preset")
        architecture = options.pop("architecture")
        options.setdefault("avg_num_neighbors", float(manifest["mean_neighbors"]))
        references, method = resolve_reference_energies(self.hparams.e0s, manifest)
        shift = residual_shift(manifest, references, self.hparams.e0s)
        rank_zero_info(f"E0s ({method}): " + ", ".join(f"{chemical_symbols[z]} {e:.6f} eV" for z, e in references.items())
                       + f"; mean residual {shift:+.4f} eV/atom")
        note = underdetermined_note(manifest) if self.hparams.e0s == "least_squares" else None
        if note:
            rank_zero_info("note: " + note)
        potential = build_potential(
            architecture, manifest["atomic_numbers"], float(manifest["cutoff"]), dtype=getattr(torch, self.hparams.dtype),
            reference_energies=references, scale=float(manifest["force_rms"]) or 1.0, shift=shift, **options,
        )
        parameters = sum(p.numel() for p in potential.parameters() if p.requires_grad)
        rank_zero_info(f"built {self.hparams.model} ({architecture}): {parameters:,} trainable parameters, "
                       f"{self.hparams.dtype}, elements "
                       + " ".join(chemical_symbols[z] for z in manifest["atomic_numbers"])
                       + f", cutoff {float(manifest['cutoff']):g} Å")
        return potential

    def forward(self, batch: GraphBatch, **options: Any) -> dict[str, torch.Tensor]:
        return self.potential(batch, **options)

    def setup(self, stage: str) -> None:
        precision = str(getattr(self.trainer, "precision", "32"))
        if "16" in precision:
            raise ValueError(f"precision '{precision}' is not supported: float16 autograd of forces loses accuracy "
                             "(and bfloat16 autocast breaks exact force derivatives); use trainer.precision 32-true "
                             "and model.dtype float32 or float64")

    def on_fit_start(self) -> None:
        self._fit_start = time.perf_counter()
        if self.augments_rotations:
            rank_zero_info("rotation augmentation: every step sees randomly rotated structures"
                           + (" (the network is not rotation invariant by construction)"
                              if self.hparams.rotation_augmentation is None else ""))

    # ----- steps -----------------------------------------------------------------------------
    def _predict(self, batch: GraphBatch, create_graph: bool) -> dict[str, torch.Tensor]:
        # Lightning's sanity check runs before its timer starts: compiling there would keep the compile
        # out of trainer.max_time, so it runs eagerly and the first training step pays the compile
        if self.compiled_forces is not None and not (self._trainer is not None and self.trainer.sanity_checking):
            return self.compiled_forces(batch, stress=self.weights.stress > 0)
        return self.potential(batch, forces=True, stress=self.weights.stress > 0, create_graph=create_graph)

    def on_train_start(self) -> None:
        if self.hparams.scheduler == "budget" and budget_fraction(self.trainer) is None:
            raise ValueError("scheduler 'budget' needs a budget: set trainer.max_time, trainer.max_epochs or "
                             "trainer.max_steps")

    def on_train_epoch_start(self) -> None:
        late = self.hparams.late_start_epoch
        if late is not None and self.hparams.late_energy_weight is not None and self.current_epoch >= late:
            self.use_late_weights()

    def use_late_weights(self) -> None:
        """MACE's second stage: the energy weight becomes `late_energy_weight` from here on."""
        self.weights = dataclasses.replace(self.weights, energy=self.hparams.late_energy_weight)

    def rotated_embedding(self, batch: GraphBatch, rotations: torch.Tensor) -> torch.Tensor:
        """Per-atom embeddings (N, D) of the batch rotated by `rotations` (B, 3, 3): the symmetry
        objective's second view; without gradient when symmetry_stop_gradient is set."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.hparams.symmetry_stop_gradient):
            return self.potential.embed(batch.rotated(rotations))

    def training_step(self, batch: GraphBatch, batch_index: int) -> torch.Tensor:
        dtype = getattr(torch, self.hparams.dtype)
        batch = batch.for_model(dtype)
        size = batch.num_graphs
        if self.augments_rotations:
            batch = batch.rotated(random_rotations(size, dtype, batch.positions.device))
        if self.symmetry is None:
            loss, parts = weighted_loss(self._predict(batch, create_graph=True), batch, self.weights)
        else:
            predicted = self.potential(batch, forces=True, stress=self.weights.stress > 0, create_graph=True,
                                       embeddings=True)
            loss, parts = weighted_loss(predicted, batch, self.weights)
            rotations = random_rotations(size, dtype, batch.positions.device)
            rotated = self.rotated_embedding(batch, rotations)
            symmetry, symmetry_parts = self.symmetry(predicted["embedding"], rotated, rotations, batch.batch, size)
            weight = self.symmetry_schedule.at(self.current_epoch, self.trainer.max_epochs)
            loss = loss + weight * symmetry
            parts.update({"symmetry": symmetry.detach(), **{f"symmetry_{k}": v for k, v in symmetry_parts.items()}})
            self.log("symmetry_weight", weight, batch_size=size)
        self.log("train_loss", loss, prog_bar=True, on_epoch=True, batch_size=size)
        for name, value in parts.items():
            self.log(f"train_{name}" if name.startswith("symmetry") else f"train_{name}_mse", value,
                     batch_size=size)
        return loss

    def validation_step(self, batch: GraphBatch, batch_index: int) -> None:
        batch = batch.for_model(getattr(torch, self.hparams.dtype))
        with torch.enable_grad():
            predicted = self._predict(batch, create_graph=False)
        loss, _ = weighted_loss(predicted, batch, self.weights)
        self.log("val_loss", loss, prog_bar=True, batch_size=batch.num_graphs, sync_dist=True)
        self.val_errors.update({k: v.detach() for k, v in predicted.items()}, batch)

    def on_validation_epoch_end(self) -> None:
        sums = torch.tensor([v for entry in self.val_errors.sums.values() for v in entry], dtype=torch.float64,
                            device=self.device)
        sums = self.trainer.strategy.reduce(sums, reduce_op="sum") if self.trainer.world_size > 1 else sums
        for k, name in enumerate(ErrorAccumulator.QUANTITIES):
            self.val_errors.sums[name] = [float(sums[3 * k]), float(sums[3 * k + 1]), int(sums[3 * k + 2])]
        labels = {"energy_per_atom_mae": "val_energy_mae", "energy_per_atom_rmse": "val_energy_rmse",
                  "forces_mae": "val_forces_mae", "forces_rmse": "val_forces_rmse", "stress_mae": "val_stress_mae"}
        summary = self.val_errors.summary()
        if hasattr(self, "_fit_start"):  # wall time, for error-against-time learning curves
            self.log("elapsed_s", time.perf_counter() - self._fit_start)
        for key, label in labels.items():
            if key in summary:
                self.log(label, summary[key], prog_bar=label in ("val_energy_mae", "val_forces_mae"))
        self.val_errors = ErrorAccumulator()

    # ----- optimisation ----------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        h = self.hparams
        kind = torch.optim.AdamW if h.optimizer == "adamw" else torch.optim.Adam
        groups = self.parameter_groups(h.weight_decay)
        # one fused kernel for all tensors where torch has one (CPU, CUDA): the default on a CPU is a Python
        # loop over the tensors, ~3 ms of every step of the small transformer (~60 ms)
        fused = all(p.device.type in ("cpu", "cuda") for group in groups for p in group["params"])
        optimizer = kind(groups, lr=h.lr, amsgrad=h.amsgrad, fused=fused or None)
        if h.scheduler == "plateau":
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=h.plateau_factor,
                                                                   patience=h.plateau_patience)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val_loss"}}
        if h.scheduler == "cosine":
            epochs = max(int(self.trainer.max_epochs or 1), 1)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
        return {"optimizer": optimizer}

    def parameter_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """The network's weights with `weight_decay`; the potential's own parameters (the energy scale
        and shift, per-element reference energies) without: decaying them would pull the energies
        towards zero instead of regularising the fit."""
        decayed, kept = [], []
        for name, parameter in self.named_parameters():
            if parameter.requires_grad:
                (decayed if ".network." in f".{name}" else kept).append(parameter)
        groups = [{"params": decayed, "weight_decay": weight_decay}, {"params": kept, "weight_decay": 0.0}]
        return [group for group in groups if group["params"]]

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None) -> None:
        h = self.hparams
        factor = 1.0
        if h.scheduler == "budget" or h.late_start_fraction is not None:
            fraction = budget_fraction(self.trainer, batch_idx) or 0.0
            if h.scheduler == "budget":
                factor = cosine_factor(fraction, h.lr_final_factor, h.lr_decay_start)
            if (h.late_start_fraction is not None and h.late_energy_weight is not None
                    and fraction >= h.late_start_fraction and self.weights.energy != h.late_energy_weight):
                self.use_late_weights()
        if h.warmup_steps and self.trainer.global_step < h.warmup_steps:
            factor *= (self.trainer.global_step + 1) / h.warmup_steps
        if factor != 1.0 or h.scheduler == "budget":
            for group in optimizer.param_groups:
                group["lr"] = h.lr * factor
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
