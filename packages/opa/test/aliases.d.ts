// express4 and koa2 are npm aliases (express@4, koa@2) installed to test the peer ranges; they share
// the types of the current majors for the parts these tests use.
declare module 'express4' {
  import express from 'express';
  export default express;
}
declare module 'koa2' {
  import Koa from 'koa';
  export default Koa;
}
