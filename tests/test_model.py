import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from rowlstm import model as model_module
from rowlstm.model import build_model, learning_rate, save_model
from tests.helpers import tiny_train


def test_model_reads_28_rows_of_28_pixels_into_10_probabilities() -> None:
    model = build_model(tiny_train(cell="lstm", units=16), steps_per_epoch=10)
    assert model.input_shape == (None, 28, 28)
    assert model.output_shape == (None, 10)
    lstm = model.get_layer("lstm_0")
    assert lstm.units == 16
    probabilities = model.predict(np.zeros((2, 28, 28), np.float32), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_layers_stack_and_dropout_follows_each_lstm() -> None:
    params = tiny_train(cell="lstm", bidirectional=False, layers=3, units=8, dropout=0.25)
    model = build_model(params, steps_per_epoch=10)
    names = [layer.name for layer in model.layers]
    assert names == [
        "rows",
        "lstm_0",
        "dropout_0",
        "lstm_1",
        "dropout_1",
        "lstm_2",
        "dropout_2",
        "digit",
    ]
    assert [model.get_layer(f"lstm_{i}").return_sequences for i in range(3)] == [1, 1, 0]
    assert model.get_layer("dropout_1").rate == 0.25


@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop", "sgd"])
def test_optimizer_learning_rate_and_clipping_come_from_params(name: str) -> None:
    params = tiny_train(optimizer=name, learning_rate=0.02, lr_schedule="constant", clipnorm=0.5)
    model = build_model(params, 10)
    assert type(model.optimizer).__name__.lower() == name
    assert float(model.optimizer.learning_rate) == pytest.approx(0.02)
    assert model.optimizer.clipnorm == 0.5


def test_cosine_schedule_warms_up_then_decays_to_zero() -> None:
    params = tiny_train(learning_rate=1e-3, lr_schedule="cosine", warmup_epochs=1, epochs=4)
    schedule = learning_rate(params, 10)
    rates = [float(schedule(step)) for step in (0, 5, 10, 25, 40)]
    assert rates[0] == 0.0
    assert rates[1] == pytest.approx(5e-4)
    assert rates[2] == pytest.approx(1e-3)
    assert rates[2] > rates[3] > rates[4]
    assert rates[4] == pytest.approx(0.0, abs=1e-9)
    assert learning_rate(tiny_train(learning_rate=1e-3, lr_schedule="constant"), 10) == 1e-3


def test_many_steps_per_execution_train_the_same_weights_as_one(monkeypatch) -> None:
    # 45 batches: one full execution of 32, then 13 and the partial last batch.
    rng = np.random.default_rng(0)
    images, labels = rng.random((1109, 28, 28), dtype=np.float32), rng.integers(0, 10, 1109)
    tf.config.experimental.enable_op_determinism()  # as the train stage runs

    def trained(steps: int) -> list[np.ndarray]:
        monkeypatch.setattr(model_module, "STEPS_PER_EXECUTION", steps)
        params = tiny_train(units=8, dropout=0.25, batch_size=25, epochs=2, warmup_epochs=1)
        keras.utils.set_random_seed(params.seed)
        model = build_model(params, steps_per_epoch=45)
        for epoch in range(2):
            validation = (images[:100], labels[:100])
            model.fit(
                images,
                labels,
                batch_size=25,
                epochs=epoch + 1,
                initial_epoch=epoch,
                shuffle=False,
                validation_data=validation,
                verbose=0,
            )
        return model.get_weights()

    assert model_module.STEPS_PER_EXECUTION > 1
    for many, one in zip(trained(model_module.STEPS_PER_EXECUTION), trained(1), strict=True):
        assert np.array_equal(many, one)


def test_saves_are_byte_stable_and_load_in_safe_mode(tmp_path) -> None:
    for name in ("a", "b"):  # two models built alike in one process: same bytes
        keras.utils.set_random_seed(0)
        model = build_model(tiny_train(), steps_per_epoch=10)
        save_model(model, tmp_path / f"{name}.keras")
    assert (tmp_path / "a.keras").read_bytes() == (tmp_path / "b.keras").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.keras") as archive:
        assert "date_saved" not in archive.read("metadata.json").decode()
    loaded = keras.saving.load_model(tmp_path / "a.keras", safe_mode=True)
    for saved, original in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, original)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.keras", "b.keras"]
