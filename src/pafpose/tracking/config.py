"""The trackers' settings, online and offline alike: :class:`TrackerConfig`."""

from __future__ import annotations

from dataclasses import dataclass

from pafpose.checks import check_number


@dataclass(frozen=True)
class TrackerConfig:
    """The tracker's settings.

    Attributes:
        min_similarity: a detection continues a track only if their keypoint similarity
            (0..1, OKS-like, times the track's weight below) is at least this (gating).
        max_lost: seconds a track survives without a match before its id is retired (from
            the frames' own timestamps: the same at 25 and 50 fps).
        velocity_smoothing: weight of the newest frame in each keypoint's velocity estimate.
        coast: time constant (seconds) of a lost track's velocity, which decays while its
            person is hidden: it coasts at most ``speed * coast`` pixels.
        lost_growth: how fast a lost track's tolerance widens, per second gone (its size is
            taken ``1 + lost_growth * seconds`` times larger in the similarity) ...
        speed_growth: ... plus ``speed_growth * speed * seconds`` pixels: a walker hidden for a
            second may be anywhere within a few steps, a person standing still is where they
            were (the uncertainty of a prediction grows with the speed it extrapolates).
        lost_weight: a lost track's similarity counts this many times (under 1: a track that
            saw its person in the last frame keeps them against an equal claim, but not
            against a clearly better one).
        confirm_hits: matches a new track needs before it is confirmed; until then it counts
            ``tentative_weight`` times and is dropped when unmatched for ``tentative_lost``.
        tentative_weight: an unconfirmed track's similarity counts this many times.
        tentative_lost: seconds an unconfirmed track survives without a match (a far person
            the detector finds in some frames only keeps a track; a false detection does not).
        shared_prior: the similarity averages over the keypoints two poses share, times
            ``n / (n + shared_prior)`` for ``n`` shared keypoints.
        fragment_similarity: a person left over after the matching whose similarity to a
            track matched this frame is at least this is a fragment of that person (half of a
            person split in two): it starts no track and is merged into that person (the
            keypoints they lack taken from it). Two people who fit the same track this well
            are compared with each other, and one whose keypoints repeat the other's (a
            duplicate) is merged too; so is the smaller of two that share at most 3 keypoints
            and fit the same track best, the larger at least this well (a head found apart).
            A fragment is merged only where it fits its person's track at least this well
            and has no more keypoints than them; else it comes back untracked.
        relink_similarity: offline, a new id whose best pose of the ``window`` frames after
            its birth fits an id that ended within ``max_lost`` at least this well (the same
            similarity, the ended track moved on by its decaying velocity) takes that id; and
            a person whose id is not seen on both sides of their frame (a new id for a frame
            or two) takes the id of a track missing from that frame but seen on both sides
            within ``window``, if the track's pose interpolated between them fits at least
            this well; and the frames of a new id the online tracker ended when the person's own
            track took them back (``Tracker.retired``) take that track's id (1: none of these).
        appearance: how much what people wear counts, where the tracker is given the frame
            (0: not at all; :mod:`~pafpose.tracking.appearance` reads the colour along each
            limb found): a pair's similarity is taken ``1 - appearance * (1 - alike)`` times,
            ``alike`` falling from 1 for the same colours as a Gaussian of their distance. It
            weighs the pairs the keypoints' gate lets through and opens none, except for a
            person who looks like a lost track's person, left without a track or matched to
            one that does not look like them (``appearance_reach``, ``appearance_doubt``).
        appearance_scale: the colour distance (CIELAB units, 0..255 as OpenCV's) at which two
            looks are one standard deviation apart; also the most a person left over may
            differ from a lost track to take it back.
        appearance_keep: a matched person whose colours lie farther than this many
            ``appearance_scale`` from their track's leave the track's colours as they were
            (a limb read across someone in front, a match that may be wrong).
        appearance_reach: how many times wider a lost track's tolerance is for a person left
            over who looks like its person: a person who returns farther from where their
            track coasted than the keypoints allow keeps their id (offline: re-linked).
        appearance_doubt: a person matched to a track whose colours lie farther than this
            many ``appearance_scale`` from theirs may still take a lost track that looks like
            them (nearer than their own by a quarter scale at least, less being one person's
            frame-to-frame noise: on the limbs the person and both tracks have, or on each
            track's own in two frames running), as a person left over may (one who comes out
            from behind a neighbour, whose track is nearer than their own coasting one, takes
            their own back); 1 to 1e6, 1e6: only people left over.
        appearance_min_height: the smallest person (pixels, their keypoints' height in the
            frame given) whose colours may move them off the track the keypoints gave them
            (``appearance_doubt``), and that a track's person must have been seen at some time
            for anyone to take the track back by their colours: a smaller person's limbs are a
            few pixels wide and read mostly what lies around them; 0 to 1e5, 0: everyone.
        appearance_rate: weight of the newest frame in a track's running mean of colours.
        appearance_unknown: ``alike`` for a pair that shares fewer than two limbs.
        min_area: smallest person area (pixels²) the similarity scale assumes (tiny or
            one-keypoint people would otherwise match nothing).
        smooth: apply the One Euro filter to the tracked keypoints (whole-body parts too:
            hands, face and feet, with the same settings and the person's size).
        min_cutoff: the filter's cut-off frequency at rest (Hz): lower, smoother.
        beta: how fast the cut-off rises with speed (speed relative to the body, in person
            sizes, the square root of the keypoints' box area, per second): higher, less lag.
        d_cutoff: cut-off frequency of the speed estimate (Hz).
        fps: frame rate assumed when :meth:`~pafpose.tracking.Tracker.update` is given no
            timestamp, until the timestamps given show the source's own (a few regular steps:
            a frame without one is then one of the source's; a 240 fps camera is followed at
            240 fps whatever this says).
        window: frames the offline mode (:class:`~pafpose.tracking.OfflineTracker`, for
            recordings) looks ahead and back to smooth each frame; also how long it holds frames.
        max_gap: frames missing from a person's track that the offline mode fills in
            (0: none, the default: on the generated sequences of ``benchmarks/tracking.py``
            filling gaps added as many false people, hidden behind others, as it found).

    The defaults were chosen on generated sequences (``benchmarks/tracking.py --seeds 0-4`` on
    two photo sets) and checked on others (seeds 5-9) and on a real street video: see
    BENCHMARKS.md, "Identity through crossings, occlusions and crowds".
    """

    min_similarity: float = 0.1
    max_lost: float = 1.0
    velocity_smoothing: float = 0.3
    coast: float = 0.6
    lost_growth: float = 1.5
    lost_weight: float = 1.0
    speed_growth: float = 4.0
    confirm_hits: int = 2
    tentative_weight: float = 0.5
    tentative_lost: float = 0.1
    shared_prior: float = 1.0
    fragment_similarity: float = 0.5
    relink_similarity: float = 0.3
    appearance: float = 0.5
    appearance_scale: float = 20.0
    appearance_keep: float = 1.5
    appearance_reach: float = 2.0
    appearance_rate: float = 0.2
    appearance_unknown: float = 0.5
    appearance_doubt: float = 1.0
    appearance_min_height: float = 130.0
    min_area: float = 32.0 * 32.0
    smooth: bool = True
    min_cutoff: float = 3.0
    beta: float = 3.0
    d_cutoff: float = 0.3
    fps: float = 30.0
    window: int = 10
    max_gap: int = 0

    def __post_init__(self) -> None:
        check_number("min_similarity", self.min_similarity, 0.0, 1.0)
        check_number("max_lost", self.max_lost, 0.0, 1e6)
        check_number("velocity_smoothing", self.velocity_smoothing, 0.0, 1.0)
        check_number("coast", self.coast, 0.0, 1e6)
        check_number("lost_growth", self.lost_growth, 0.0, 1e6)
        check_number("lost_weight", self.lost_weight, 0.0, 1.0)
        check_number("speed_growth", self.speed_growth, 0.0, 1e6)
        check_number("confirm_hits", self.confirm_hits, 1, 1000, integer=True)
        check_number("tentative_weight", self.tentative_weight, 0.0, 1.0)
        check_number("tentative_lost", self.tentative_lost, 0.0, 1e6)
        check_number("shared_prior", self.shared_prior, 0.0, 1000.0)
        check_number("fragment_similarity", self.fragment_similarity, 0.0, 1.0)
        check_number("relink_similarity", self.relink_similarity, 0.0, 1.0)
        check_number("appearance", self.appearance, 0.0, 1.0)
        check_number("appearance_scale", self.appearance_scale, 0.0, 1e6, lo_open=True)
        check_number("appearance_unknown", self.appearance_unknown, 0.0, 1.0)
        check_number("appearance_rate", self.appearance_rate, 0.0, 1.0, lo_open=True)
        check_number("appearance_reach", self.appearance_reach, 1.0, 1e3)
        check_number("appearance_doubt", self.appearance_doubt, 1.0, 1e6)
        check_number("appearance_min_height", self.appearance_min_height, 0.0, 1e5)
        check_number("appearance_keep", self.appearance_keep, 0.0, 1e6, lo_open=True)
        check_number("min_area", self.min_area, 0.0, 1e12, lo_open=True)
        check_number("min_cutoff", self.min_cutoff, 0.0, 1e6, lo_open=True)
        check_number("beta", self.beta, 0.0, 1e6)
        check_number("d_cutoff", self.d_cutoff, 0.0, 1e6, lo_open=True)
        check_number("fps", self.fps, 0.0, 1e6, lo_open=True)
        check_number("window", self.window, 0, 1000, integer=True)
        check_number("max_gap", self.max_gap, 0, 1000, integer=True)
        if not isinstance(self.smooth, bool):
            from pafpose.errors import PafposeError

            raise PafposeError(f"smooth must be True or False, got {self.smooth!r}")
