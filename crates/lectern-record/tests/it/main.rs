//! Integration tests of lectern-record, in one binary: real files in temp folders, checked
//! with ffprobe/ffmpeg (Debian's ffmpeg; the tests fail, loudly, without it).

mod crash;
mod export;
mod pipeline;
mod recover;
mod support;
mod writer;
