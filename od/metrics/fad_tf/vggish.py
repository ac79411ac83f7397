"""VGGish in tf-slim, with the variable names of Google's `vggish_model.ckpt`.

The graph is the published architecture (AudioSet VGGish): [N, 96, 64] log-mel examples ->
four conv blocks (64, 128, 2x256, 2x512; 3x3, ReLU; 2x2 max-pool) -> fc1 (2x4096, ReLU) ->
fc2 (128, linear). Names are `vggish/conv1/weights`, `vggish/conv3/conv3_1/biases`, ...,
`vggish/fc2/weights`, so the official checkpoint restores into it unchanged. Imports TF: run it
only in the FAD environment (`make fad-env`).
"""
from __future__ import annotations

import typing as tp
from pathlib import Path

import numpy as np
import tensorflow.compat.v1 as tf
import tf_slim as slim

from .frontend import EXAMPLE_FRAMES, NUM_MEL_BINS

EMBEDDING_SIZE = 128
INIT_STDDEV = 0.01
INPUT_NAME = 'vggish/input_features'
EMBEDDING_NAME = 'vggish/embedding'
# Written by `random-checkpoint` next to the model variables: the official checkpoint has no
# such variable, so any report can tell that its numbers come from untrained weights.
RANDOM_MARKER = 'od/random_init'


def define_vggish(training: bool = False, init=None) -> tp.Tuple[tf.Tensor, tf.Tensor]:
    """Build VGGish in the default graph; returns (features [N, 96, 64], embedding [N, 128]).

    `init` defaults to the official truncated normal (stddev 0.01), meant for training.
    """
    init = init or tf.truncated_normal_initializer(stddev=INIT_STDDEV)
    with slim.arg_scope([slim.conv2d, slim.fully_connected], weights_initializer=init,
                        biases_initializer=tf.zeros_initializer(), activation_fn=tf.nn.relu,
                        trainable=training), \
            slim.arg_scope([slim.conv2d], kernel_size=[3, 3], stride=1, padding='SAME'), \
            slim.arg_scope([slim.max_pool2d], kernel_size=[2, 2], stride=2, padding='SAME'), \
            tf.variable_scope('vggish'):
        features = tf.placeholder(tf.float32, shape=(None, EXAMPLE_FRAMES, NUM_MEL_BINS),
                                  name='input_features')
        net = tf.reshape(features, [-1, EXAMPLE_FRAMES, NUM_MEL_BINS, 1])  # [N, 96, 64, 1]
        net = slim.conv2d(net, 64, scope='conv1')
        net = slim.max_pool2d(net, scope='pool1')  # [N, 48, 32, 64]
        net = slim.conv2d(net, 128, scope='conv2')
        net = slim.max_pool2d(net, scope='pool2')  # [N, 24, 16, 128]
        net = slim.repeat(net, 2, slim.conv2d, 256, scope='conv3')
        net = slim.max_pool2d(net, scope='pool3')  # [N, 12, 8, 256]
        net = slim.repeat(net, 2, slim.conv2d, 512, scope='conv4')
        net = slim.max_pool2d(net, scope='pool4')  # [N, 6, 4, 512]
        net = slim.flatten(net)  # [N, 12288]
        net = slim.repeat(net, 2, slim.fully_connected, 4096, scope='fc1')
        net = slim.fully_connected(net, EMBEDDING_SIZE, scope='fc2', activation_fn=None)
        return features, tf.identity(net, name='embedding')  # [N, 128]


def model_variables() -> tp.Dict[str, tf.Variable]:
    """Checkpoint name -> variable, for the VGGish variables of the default graph."""
    return {v.op.name: v for v in tf.global_variables() if v.op.name.startswith('vggish/')}


def is_random_checkpoint(checkpoint: tp.Union[str, Path]) -> bool:
    return any(name == RANDOM_MARKER for name, _ in tf.train.list_variables(str(checkpoint)))


def checkpoint_variables(checkpoint: tp.Union[str, Path]) -> tp.List[tp.Tuple[str, tp.List[int]]]:
    """(name, shape) of every variable stored in a checkpoint, sorted by name."""
    return sorted((name, list(shape)) for name, shape in tf.train.list_variables(str(checkpoint)))


def write_random_checkpoint(path: tp.Union[str, Path], seed: int = 0) -> Path:
    """Save a randomly initialised VGGish (for smoke tests only) and mark it as random.

    He initialisation (not the training init, whose 0.01 stddev shrinks activations ~1e-5 after
    ten layers) keeps the embedding's scale, so a random VGGish still separates clean from
    distorted audio and FAD values are not lost in round-off.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.Graph().as_default() as graph:
        tf.set_random_seed(seed)
        define_vggish(init=slim.variance_scaling_initializer(factor=2.0, mode='FAN_IN'))
        with tf.variable_scope('od'):
            tf.get_variable('random_init', initializer=tf.constant(True), trainable=False)
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            # Saver writes index/data then renames the `checkpoint` state file; the prefix is
            # what users pass around, like Google's `vggish_model.ckpt`.
            tf.train.Saver(tf.global_variables()).save(sess, str(path), write_meta_graph=False,
                                                       write_state=False)
    return path


class Embedder:
    """A loaded VGGish: `embed(examples [N, 96, 64]) -> [N, 128]` (optionally PCA'd).

    Loads only the `vggish/*` variables by name, so both the official checkpoint and one from
    `write_random_checkpoint` restore; a checkpoint missing a variable fails with its name.
    """

    def __init__(self, checkpoint: tp.Union[str, Path], pca_params: tp.Optional[str] = None,
                 batch_size: int = 64, threads: int = 0):
        self.checkpoint = str(checkpoint)
        self.batch_size = batch_size
        self.random_init = is_random_checkpoint(self.checkpoint)
        stored = dict(tf.train.list_variables(self.checkpoint))
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.features, self.embedding = define_vggish()
            variables = model_variables()
            missing = [n for n, v in variables.items() if stored.get(n) != v.shape.as_list()]
            if missing:
                raise ValueError(f"{self.checkpoint} is not a VGGish checkpoint: missing or "
                                 f"mis-shaped variables {missing[:4]}{'...' if len(missing) > 4 else ''}")
            # threads: TF's intra-op pool (0 = all cores); Beam workers split the cores instead
            # of each one oversubscribing them.
            config = tf.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads)
            self.session = tf.Session(graph=self.graph, config=config)
            tf.train.Saver(variables).restore(self.session, self.checkpoint)
        self.pca = None
        if pca_params:
            with np.load(pca_params) as p:
                # Official post-processor: project, whiten by the stored mean ([128,1]).
                self.pca = (p['pca_eigen_vectors'].astype(np.float64), p['pca_means'].reshape(-1, 1))

    def embed(self, examples: np.ndarray) -> np.ndarray:
        outs = [self.session.run(self.embedding, {self.features: examples[i:i + self.batch_size]})
                for i in range(0, len(examples), self.batch_size)]
        emb = np.concatenate(outs).astype(np.float64) if outs else np.zeros((0, EMBEDDING_SIZE))
        if self.pca is not None:
            vectors, means = self.pca
            emb = (vectors @ (emb.T - means)).T  # [N, 128], float (no 8-bit quantisation)
        return emb

    def close(self) -> None:
        self.session.close()
