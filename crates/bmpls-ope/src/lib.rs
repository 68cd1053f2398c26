//! Order-preserving encryption after Boldyreva, Chenette, Lee and O'Neill (2009). Pure: no I/O,
//! no clock.
#![forbid(unsafe_code)]
