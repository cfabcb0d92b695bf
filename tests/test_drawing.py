"""Drawing: the explain figure (pose drawing on a photo is checked with the formats, test_formats)."""

import cv2


def test_explain_figure(est, images, tmp_path):
    from pafpose.viz import explain_figure, save_figure

    img = cv2.imread(str(images / "p3_dance.png"))
    hm, paf, geometry = est.fields([img])[0]
    fig = explain_figure(img, hm.numpy(), paf.numpy(), est.spec, est.predict(img), geometry)
    out = save_figure(fig, tmp_path / "fig.png", dpi=40)
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape[0] > 100 and picture.std() > 10
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]
