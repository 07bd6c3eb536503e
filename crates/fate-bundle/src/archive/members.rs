//! Reading back the gzip archives `bundle` writes: a series of gzip members that each
//! record their size (gzp's Mgzip format), decompressed a batch of members at a time on
//! every core with gzp's own functions for that format. A damaged member is an error at
//! once (gzp's own parallel reader waits forever on one).

use std::collections::VecDeque;
use std::io::{self, Read};

use gzp::BlockFormatSpec;
use gzp::check::Check;
use gzp::deflate::Mgzip;

/// Members decompressed together: enough to keep every core busy between reads.
const BATCH_PER_THREAD: usize = 8;

pub struct Members<R> {
    inner: R,
    threads: usize,
    ready: VecDeque<Vec<u8>>,
    at: usize,
    ended: bool,
}

impl<R: Read> Members<R> {
    pub fn new(inner: R) -> Members<R> {
        Members {
            inner,
            threads: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            ready: VecDeque::new(),
            at: 0,
            ended: false,
        }
    }

    /// The next member's bytes after its header, or none at the end of the stream.
    fn read_member(&mut self) -> io::Result<Option<Vec<u8>>> {
        let format = Mgzip {};
        let mut header = vec![0u8; Mgzip::HEADER_SIZE];
        let mut got = 0;
        while got < header.len() {
            match self.inner.read(&mut header[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(damaged("a gzip member's header is cut off")),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        format
            .check_header(&header)
            .map_err(|e| damaged(&format!("not a gzip member as bundle writes them: {e}")))?;
        let size = format
            .get_block_size(&header)
            .map_err(|e| damaged(&e.to_string()))?;
        if size < Mgzip::HEADER_SIZE + 8 {
            return Err(damaged(
                "a gzip member is shorter than its header and trailer",
            ));
        }
        let mut member = vec![0u8; size - Mgzip::HEADER_SIZE];
        self.inner
            .read_exact(&mut member)
            .map_err(|_| damaged("a gzip member is cut off"))?;
        Ok(Some(member))
    }

    /// Reads and decompresses the next batch of members.
    fn fill(&mut self) -> io::Result<()> {
        let mut members = Vec::new();
        while members.len() < self.threads * BATCH_PER_THREAD {
            let Some(member) = self.read_member()? else {
                self.ended = true;
                break;
            };
            members.push(member);
        }
        let per_thread = members.len().div_ceil(self.threads).max(1);
        let decoded: Vec<io::Result<Vec<Vec<u8>>>> = std::thread::scope(|scope| {
            let running: Vec<_> = members
                .chunks(per_thread)
                .map(|chunk| scope.spawn(move || chunk.iter().map(|m| inflate(m)).collect()))
                .collect();
            running
                .into_iter()
                .map(|t| t.join().expect("decompression does not panic"))
                .collect()
        });
        for chunk in decoded {
            self.ready.extend(chunk?);
        }
        Ok(())
    }
}

/// One member (after its header): inflated, its CRC and size checked.
fn inflate(member: &[u8]) -> io::Result<Vec<u8>> {
    let format = Mgzip {};
    let footer = format.get_footer_values(member);
    if footer.amount == 0 {
        return Ok(Vec::new());
    }
    let mut decompressor = format.create_decompressor();
    let data = format
        .decode_block(
            &mut decompressor,
            &member[..member.len() - 8],
            footer.amount as usize,
        )
        .map_err(|e| damaged(&format!("a gzip member does not inflate: {e}")))?;
    let mut check = <Mgzip as BlockFormatSpec>::B::new();
    check.update(&data);
    if check.sum() != footer.sum || data.len() != footer.amount as usize {
        return Err(damaged("a gzip member's CRC does not match"));
    }
    Ok(data)
}

fn damaged(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("damaged archive: {what}"),
    )
}

impl<R: Read> Read for Members<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(front) = self.ready.front() {
                if self.at < front.len() {
                    let n = buf.len().min(front.len() - self.at);
                    buf[..n].copy_from_slice(&front[self.at..self.at + n]);
                    self.at += n;
                    return Ok(n);
                }
                self.ready.pop_front();
                self.at = 0;
                continue;
            }
            if self.ended {
                return Ok(0);
            }
            self.fill()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::streams::Compression;
    use crate::archive::streams::compressor;
    use std::io::Write;

    fn members_of(data: &[u8]) -> Vec<u8> {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut z = compressor(Compression::Gzip, file.reopen().unwrap()).unwrap();
        z.write_all(data).unwrap();
        z.finish_stream().unwrap();
        std::fs::read(file.path()).unwrap()
    }

    #[test]
    fn members_read_back_as_written_and_damage_is_an_error() {
        let data: Vec<u8> = (0..4_000_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let written = members_of(&data);
        let mut back = Vec::new();
        Members::new(&written[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        for at in [written.len() / 3, written.len() / 2, written.len() - 3] {
            let mut damaged = written.clone();
            damaged[at] ^= 0x40;
            let mut out = Vec::new();
            let read = Members::new(&damaged[..]).read_to_end(&mut out);
            assert!(
                read.is_err() || out != data,
                "a flipped byte at {at} went unseen"
            );
        }
        let cut = &written[..written.len() - 100];
        assert!(Members::new(cut).read_to_end(&mut Vec::new()).is_err());
    }
}
