"""Tiny float Keras model builders shared by the cnn2snn tests."""
import keras
from keras import layers as L


def seq(input_shape, *layers):
    """A Sequential model with an explicit Input."""
    return keras.Sequential([keras.Input(input_shape), *layers])


def relu():
    return L.ReLU(max_value=6.0)


def conv(filters=4, kernel=3, strides=1, padding="same", **kw):
    return L.Conv2D(filters, kernel, strides=strides, padding=padding, **kw)


def sep(filters=4, kernel=3, strides=1, padding="same", **kw):
    return L.SeparableConv2D(filters, kernel, strides=strides, padding=padding, **kw)


def head(units=3):
    return [L.Flatten(), L.Dense(units)]


#: pattern name -> a float model whose blocks include that pattern.
PATTERN_FIXTURES = {
    "input-data": lambda: seq((8, 8, 2), conv(), relu(), *head()),
    "input-conv-pool-relu": lambda: seq((8, 8, 3), conv(), L.MaxPooling2D(padding="same"),
                                        relu(), *head()),
    "input-conv-relu-pool": lambda: seq((8, 8, 1), conv(padding="valid"), relu(),
                                        L.MaxPooling2D(), *head()),
    "conv-pool-relu": lambda: seq((8, 8, 2), conv(), L.BatchNormalization(), L.GlobalAveragePooling2D(),
                                  L.BatchNormalization(), relu(), L.Dense(3)),
    # A max-pooling CNP layer must feed a CNP layer to map in hardware: a conv follows each.
    "conv-relu-pool": lambda: seq((8, 8, 2), conv(), relu(), L.MaxPooling2D(padding="same"),
                                  conv(), relu(), *head()),
    "sepconv-pool-relu": lambda: seq((8, 8, 3), conv(), relu(), sep(), L.MaxPooling2D(
        padding="same"), relu(), conv(), relu(), *head()),
    "sepconv-relu-pool": lambda: seq((8, 8, 3), conv(), relu(), sep(), relu(),
                                     L.MaxPooling2D(padding="same"), conv(), relu(), *head()),
    "dense-relu": lambda: seq((8, 8, 3), conv(), relu(), L.Flatten(), L.Dense(5), relu(),
                              L.Dropout(0.5), L.Dense(3), L.Softmax()),
}
