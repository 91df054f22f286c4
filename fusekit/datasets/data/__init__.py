"""The bundled data files and their cards (package data; read by ``fusekit.datasets``)."""
