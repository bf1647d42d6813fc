"""``artifact_path``: where a task writes the file it offers for download."""
from __future__ import annotations

import pytest

from hopper import artifact_path


def test_an_artifact_goes_under_the_data_folder(client):
    path = artifact_path("report.csv")
    assert path == client.settings.artifacts_dir / "report.csv"
    assert path.parent.is_dir()


@pytest.mark.parametrize("name", ["", "..", ".hidden", "a/b.csv", "../x.csv", "a\\b",
                                  "nul\x00.csv", None])
def test_a_name_that_is_not_a_plain_file_name_is_refused(client, name):
    with pytest.raises(ValueError, match="plain file name"):
        artifact_path(name)
