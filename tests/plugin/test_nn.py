"""``fusekit.plugin.nn``: pooling a feature to a vector (``as_vector``), its width
(``vector_size``), seeded generators. Expected values are written out by hand."""

import torch

from fusekit.plugin import as_vector, seeded_generator, vector_size


def test_vector_size_is_the_width_of_a_vector_the_last_axis_of_a_sequence_and_the_product_else():
    assert vector_size((5,)) == 5
    assert vector_size((4, 7)) == 7  # (T, D) sequence: pooled over T
    assert vector_size((3, 4, 5)) == 60  # (C, H, W) image: flattened
    assert vector_size((2, 3, 4, 5)) == 120


def test_as_vector_keeps_vectors_and_means_sequences_over_their_steps():
    vectors = torch.arange(6.0).reshape(2, 3)
    assert as_vector(vectors) is vectors
    sequence = torch.tensor(
        [[[1.0, 2.0], [3.0, 4.0], [8.0, 0.0]], [[0.0, 0.0], [2.0, 2.0], [4.0, 10.0]]]
    )
    expected = torch.tensor([[4.0, 2.0], [2.0, 4.0]])  # (1+3+8)/3, (2+4+0)/3; (0+2+4)/3, 12/3
    torch.testing.assert_close(as_vector(sequence), expected)
    torch.testing.assert_close(as_vector(sequence, None), expected)


def test_as_vector_means_a_padded_sequence_over_its_real_steps_only():
    sequence = torch.tensor(
        [
            [[1.0, 2.0], [3.0, 4.0], [8.0, 0.0]],
            [[6.0, 1.0], [50.0, 50.0], [50.0, 50.0]],
            [[7.0, 7.0], [7.0, 7.0], [7.0, 7.0]],
        ]
    )  # (B=3, T=3, D=2)
    steps = torch.tensor([[True, True, False], [True, False, False], [False, False, False]])
    expected = torch.tensor([[2.0, 3.0], [6.0, 1.0], [0.0, 0.0]])  # no real step: zeros
    torch.testing.assert_close(as_vector(sequence, steps), expected)


def test_as_vector_flattens_an_image_row_major_to_the_width_vector_size_gives():
    images = torch.arange(2.0 * 3 * 2 * 2).reshape(2, 3, 2, 2)  # (B, C, H, W)
    flat = as_vector(images)
    assert flat.shape == (2, vector_size((3, 2, 2)))
    assert flat[0].tolist() == [float(v) for v in range(12)]
    assert flat[1].tolist() == [float(v) for v in range(12, 24)]


def test_seeded_generator_gives_the_stream_of_torch_manual_seed():
    reference = torch.Generator()
    reference.manual_seed(1234)
    expected = torch.rand(5, generator=reference)
    torch.testing.assert_close(torch.rand(5, generator=seeded_generator(1234)), expected)
    assert not torch.equal(torch.rand(5, generator=seeded_generator(1235)), expected)
