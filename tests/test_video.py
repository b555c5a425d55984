import av
import numpy as np
import pytest

from twostream.video import VideoError, iter_frames, output_size, read_video, write_video


def test_output_size_keeps_aspect_and_sets_short_side():
    assert output_size(320, 240, 256) == (341, 256)
    assert output_size(240, 320, 256) == (256, 341)
    assert output_size(340, 256, 256) == (340, 256)
    assert output_size(320, 240, None) == (320, 240)
    with pytest.raises(ValueError, match="short_side"):
        output_size(320, 240, -5)


@pytest.mark.parametrize("name, codec, decoder", [("a.mp4", "libx264", "h264"), ("b.avi", "mpeg4", "mpeg4"),
                                                  ("c.mkv", "libx264", "h264"), ("d.webm", "libvpx-vp9", "vp9")])
def test_tiny_video_round_trip_keeps_every_frame(tmp_path, name, codec, decoder, moving_frames):
    frames = moving_frames(9, 48, 64)
    path = tmp_path / name
    write_video(path, frames, fps=25, codec=codec)
    decoded, info = read_video(path, short_side=None)
    assert info.codec == decoder
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    assert info.fps == pytest.approx(25)
    # lossy codecs: close, not equal; and in order (each decoded frame is nearest its own source)
    err = np.abs(decoded.astype(int) - frames.astype(int)).mean(axis=(1, 2, 3))
    assert err.max() < 8
    for t in range(len(frames)):
        dists = [np.abs(decoded[t].astype(int) - f.astype(int)).mean() for f in frames]
        assert int(np.argmin(dists)) == t


def test_rescale_short_side(tmp_path, moving_frames):
    path = tmp_path / "v.mp4"
    write_video(path, moving_frames(4, 48, 64))
    frames, info = read_video(path, short_side=96)
    assert frames.shape == (4, 96, 128, 3)
    assert (info.width, info.height, info.source_width, info.source_height) == (128, 96, 64, 48)


def test_errors_name_the_file(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="empty.mp4: empty file"):
        iter_frames(empty)
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(VideoError, match="junk.avi"):
        info, frames = iter_frames(junk)
        list(frames)
    with pytest.raises(VideoError, match="missing.mp4: no such file"):
        iter_frames(tmp_path / "missing.mp4")


def test_decode_real_ucf101_clips_shared_data(shared_data):
    clips = sorted((shared_data / "clips" / "ucf101").iterdir())
    assert len(clips) == 10
    for clip in clips:
        frames, info = read_video(clip)
        assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3
        assert min(frames.shape[1:3]) == 256
        assert len(frames) > 30
        assert frames.std() > 10  # real content, not a blank decode
        if clip.suffix == ".avi":  # the original XviD file: 320x240 at 29.97 fps
            assert info.codec == "mpeg4"
            assert (info.source_width, info.source_height) == (320, 240)
            assert frames.shape[1:3] == (256, 341)
            assert info.fps == pytest.approx(29.97, abs=0.01)
        else:  # the MP4 re-encodes (MPEG-4 part 2): 340x256 at 25 fps, no frame count in the header
            assert info.codec == "mpeg4"
            assert frames.shape[1:3] == (256, 340)
            assert info.fps == pytest.approx(25)


def test_truncated_real_clip_is_refused_unless_accepted_shared_data(shared_data, tmp_path):
    src = shared_data / "clips" / "ucf101" / "v_Basketball_g01_c01.avi"  # its AVI header declares 141 frames
    cut = tmp_path / "cut.avi"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 3])
    with pytest.raises(VideoError, match=r"cut.avi: truncated: \d+ frames decoded of the 141"):
        read_video(cut)
    frames, info = read_video(cut, accept_truncated=True)  # the decodable frames of the cut AVI, kept
    full, _ = read_video(src)
    assert info.declared_frames == 141 and 0 < len(frames) < len(full) and np.array_equal(frames[0], full[0])


def test_frames_skipped_inside_an_avi_are_not_truncation(tmp_path):
    # XviD AVIs (UCF-101's) hold not-coded frames: the header counts them, the decoder outputs nothing for
    # them. Here the AVI muxer counts a gap of 5 frames in the timestamps the same way.
    path = tmp_path / "gaps.avi"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for t in [*range(10), *range(15, 20)]:
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), t * 10, np.uint8), format="rgb24")
            frame.pts = t
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    info, frames = iter_frames(path, short_side=0)
    assert info.declared_frames == 20 and len(list(frames)) == 15 and frames.count == 15
    assert not frames.truncated
    # a file cut short is still refused: test_truncated_real_clip_is_refused_unless_accepted_shared_data
